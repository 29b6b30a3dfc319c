/* Lab 04, reference solution: ring reduce-scatter and allgather on blocking send/recv.
 *
 * Why odd/even: the comm offers only BLOCKING send and receive. If every rank first sends
 * to its right neighbour and then receives from its left, every rank sits in its send
 * waiting for a receiver that is itself sending: a cycle of waits. MPI hides it for small
 * messages (they go "eager", buffered by the library) and deadlocks for large ones
 * (rendezvous). Breaking the cycle: even ranks send then receive, odd ranks receive then
 * send. For N odd, ranks N-1 and 0 are both even: N-1 sends to 0 while 0 sends to 1,
 * whose receive is posted, so 0 completes, then receives from N-1: no cycle. */
#include "lab.h"
#include "../lab04-collectives/student.h"

/* One ring step: send `slen` floats of `sbuf` to the right, receive `rlen` into `rbuf`
 * from the left, ordered so that the ring cannot deadlock. */
static int ring_step(zl_comm *c, const float *sbuf, size_t slen, float *rbuf, size_t rlen,
                     int tag)
{
    int N = c->size, r = c->rank;
    int right = (r + 1) % N, left = (r - 1 + N) % N;
    zl_status st;
    if (r % 2 == 0) {
        st = lab_send(c, sbuf, slen, right, tag);
        if (st == ZL_OK) st = lab_recv(c, rbuf, rlen, left, tag);
    } else {
        st = lab_recv(c, rbuf, rlen, left, tag);
        if (st == ZL_OK) st = lab_send(c, sbuf, slen, right, tag);
    }
    return st == ZL_OK ? 0 : -1;
}

static int mod(int a, int N) { return ((a % N) + N) % N; }

int ring_reduce_scatter(zl_comm *c, float *x, size_t n, float *tmp)
{
    int N = c->size, r = c->rank;
    /* Step s: send my partial sum of chunk r-1-s, receive the left's partial sum of chunk
     * r-2-s and add mine. The chunk I send at step s+1 is the one I completed at step s;
     * at the last step (s = N-2) I receive chunk r-N = r: complete, the sum of all N. */
    for (int s = 0; s < N - 1; s++) {
        size_t soff, slen, roff, rlen;
        ring_chunk(n, N, mod(r - 1 - s, N), &soff, &slen);
        ring_chunk(n, N, mod(r - 2 - s, N), &roff, &rlen);
        if (ring_step(c, x + soff, slen, tmp, rlen, s) != 0) return -1;
        for (size_t i = 0; i < rlen; i++) x[roff + i] += tmp[i];
    }
    return 0;
}

int ring_allgather(zl_comm *c, float *x, size_t n)
{
    int N = c->size, r = c->rank;
    /* Step s: forward chunk r-s (my own at s = 0, then the one I just received), receive
     * chunk r-1-s straight into place. */
    for (int s = 0; s < N - 1; s++) {
        size_t soff, slen, roff, rlen;
        ring_chunk(n, N, mod(r - s, N), &soff, &slen);
        ring_chunk(n, N, mod(r - 1 - s, N), &roff, &rlen);
        if (ring_step(c, x + soff, slen, x + roff, rlen, 100 + s) != 0) return -1;
    }
    return 0;
}

int ring_allreduce(zl_comm *c, float *x, size_t n, float *tmp)
{
    int rc = ring_reduce_scatter(c, x, n, tmp);
    if (rc != 0) return rc;
    return ring_allgather(c, x, n);
}
