# lab03-accumulation: not written yet (teaching/README.md)
