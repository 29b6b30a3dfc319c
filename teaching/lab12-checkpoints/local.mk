# lab12-checkpoints: not written yet (teaching/README.md)
