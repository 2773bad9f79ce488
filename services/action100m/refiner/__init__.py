"""The refiner service: an LLM turns captions and metadata into a structured annotation per segment,
over three Self-Refine rounds, decoding under a JSON schema."""
