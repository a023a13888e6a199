"""StuCrs research workflow: the benchmark harness (``workflow.bench``) and the pipeline's helpers."""
