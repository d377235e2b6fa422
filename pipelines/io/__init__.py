"""Input and output: shard readers (WARC framing included), input path lists and location checks, output rows and Parquet writing."""
