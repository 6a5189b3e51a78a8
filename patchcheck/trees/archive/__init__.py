"""Reading archives without unpacking them: decompression (compress), tar headers (tar), the
cached member store (store) and the patch queue laid over it (queue)."""
