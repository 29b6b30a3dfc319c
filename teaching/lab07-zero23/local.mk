# lab07-zero23: not written yet (teaching/README.md)
