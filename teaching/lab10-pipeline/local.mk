# lab10-pipeline: not written yet (teaching/README.md)
