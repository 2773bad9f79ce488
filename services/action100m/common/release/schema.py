"""The Arrow schema of the released parquet, exactly as docs/method.md, "Output", states it.

Every field is nullable; `start`/`end` are float32 and `level` int16, as in the release.
"""

import pyarrow as pa

TRANSCRIPT_ENTRY = pa.struct([("time", pa.string()), ("text", pa.string())])

METADATA_SCHEMA = pa.struct(
    [
        ("title", pa.string()),
        ("description", pa.string()),
        ("view_count", pa.int64()),
        ("like_count", pa.int64()),
        ("duration", pa.int64()),
        ("upload_date", pa.string()),
        ("transcript", pa.list_(TRANSCRIPT_ENTRY)),
    ]
)

GPT_SCHEMA = pa.struct(
    [
        ("summary", pa.struct([("brief", pa.string()), ("detailed", pa.string())])),
        ("action", pa.struct([("brief", pa.string()), ("detailed", pa.string()), ("actor", pa.string())])),
    ]
)

NODE_SCHEMA = pa.struct(
    [
        ("node_id", pa.string()),
        ("parent_id", pa.string()),
        ("level", pa.int16()),
        ("start", pa.float32()),
        ("end", pa.float32()),
        ("plm_action", pa.string()),
        ("plm_caption", pa.string()),
        ("llama3_caption", pa.string()),
        ("gpt", GPT_SCHEMA),
    ]
)

RELEASE_SCHEMA = pa.schema(
    [
        ("video_uid", pa.string()),
        ("metadata", METADATA_SCHEMA),
        ("nodes", pa.list_(NODE_SCHEMA)),
    ]
)
