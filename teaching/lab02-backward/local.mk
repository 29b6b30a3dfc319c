# lab02-backward: not written yet (teaching/README.md)
