# lab04-collectives: not written yet (teaching/README.md)
