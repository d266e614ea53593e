"""Getting pixels and rows in and out: image inputs, tensor batches, file expansion, pixel preparation, tables and atomic writes."""
