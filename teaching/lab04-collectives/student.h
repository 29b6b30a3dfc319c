/* Lab 04: collectives from scratch. The functions you write in student.c.
 *
 * A buffer x of n floats lives on every rank of communicator c (c->size = N ranks,
 * c->rank = r). It is cut into N contiguous chunks, chunk k = [off_k, off_k + len_k), by
 * ring_chunk() below (given): when N does not divide n the first n % N chunks have one
 * element more, so chunk sizes may differ by one (numpy's array_split).
 *
 * Move data ONLY with lab_send() and lab_recv() (given, in lab.c): they are the library's
 * blocking point-to-point zl_comm_send / zl_comm_recv on floats, and they count the bytes
 * each rank sends, which the check compares with the ring's theoretical traffic. The
 * library's collectives (zl_comm_allreduce, ...) are the check's reference: do not call
 * them here.
 *
 * Every function returns 0 when done (or LAB_NOT_DONE while it is still a TODO; a
 * failing lab_send/lab_recv: return -1) and works for N = 2, 3, 4. */
#ifndef LAB04_STUDENT_H
#define LAB04_STUDENT_H

#include <stddef.h>

#include "lab.h"

/* Given (lab.c): chunk k of n elements over N ranks. */
void ring_chunk(size_t n, int N, int k, size_t *off, size_t *len);
/* Given (lab.c): blocking send / receive of `count` floats to / from rank `peer` of c
 * with tag `tag` (0 <= tag < 32000). lab_send adds count * 4 to this rank's sent-bytes
 * counter. Both return ZL_OK or the library's error status. */
zl_status lab_send(zl_comm *c, const float *buf, size_t count, int peer, int tag);
zl_status lab_recv(zl_comm *c, float *buf, size_t count, int peer, int tag);

/* TASK 1. Ring reduce-scatter, in place: on entry x (n) is this rank's vector; on return
 * chunk r of x holds the element-wise SUM over all ranks of their chunk r (the other
 * chunks of x may hold anything). N-1 steps; in each, every rank sends one chunk to its
 * right neighbour (r+1) % N and receives one from its left (r-1+N) % N, adding it into
 * its own copy of that chunk. `tmp` is scratch of at least ceil(n/N) floats to receive
 * into. Each rank sends (N-1)/N of the buffer's bytes. */
int ring_reduce_scatter(zl_comm *c, float *x, size_t n, float *tmp);

/* TASK 2. Ring allgather, in place: on entry chunk r of x (n) is valid on rank r; on
 * return every chunk of x is valid on every rank (chunk k being rank k's). N-1 steps of
 * send-right / receive-left; each rank sends (N-1)/N of the buffer's bytes. */
int ring_allgather(zl_comm *c, float *x, size_t n);

/* TASK 3. Ring allreduce, in place: on return x (n) is the element-wise sum over all
 * ranks, on every rank. Reduce-scatter, then allgather (Patarasuk & Yuan): 2(N-1)/N of
 * the buffer's bytes sent per rank, whatever N. tmp as for ring_reduce_scatter. */
int ring_allreduce(zl_comm *c, float *x, size_t n, float *tmp);

#endif
