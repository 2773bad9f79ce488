"""The transcriber service: Whisper on a video's speech, in the release's transcript form."""
