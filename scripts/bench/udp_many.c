/* udp_many: N plain UDP sockets, polled and drained by one process, counting datagrams
 * (deliveries: one datagram to 100 sockets counts 100) during SECONDS after the first.
 *   udp_many join IFNAME GROUP PORT N SECONDS : the Linux kernel's own multicast delivery:
 *       N sockets bound to GROUP:PORT, each joined to GROUP on IFNAME (the figure to beat);
 *   udp_many bind ADDR PORT N SECONDS : N sockets bound to ADDR:PORT .. ADDR:PORT+N-1 (where
 *       N `tunmcastctl listen --udp-to` listeners send).
 * Each socket is drained with recvmmsg, 64 datagrams a call. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define SLOT 2048

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    int join = argc == 7 && strcmp(argv[1], "join") == 0;
    int bound = argc == 6 && strcmp(argv[1], "bind") == 0;
    if (!join && !bound) {
        fprintf(stderr, "usage: udp_many join IFNAME GROUP PORT N SECONDS\n"
                        "       udp_many bind ADDR PORT N SECONDS\n");
        return 2;
    }
    const char *addr_text = join ? argv[3] : argv[2];
    int port = atoi(join ? argv[4] : argv[3]);
    int n = atoi(join ? argv[5] : argv[4]);
    double seconds = atof(join ? argv[6] : argv[5]);
    if (n < 1 || n > 10000) { fprintf(stderr, "N must be 1..10000\n"); return 2; }
    int ep = epoll_create1(0);
    for (int i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        if (fd < 0) { perror("socket"); return 1; }
        int one = 1, size = 4 << 20;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(join ? port : port + i)};
        inet_pton(AF_INET, addr_text, &a.sin_addr);
        if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) { perror("bind"); return 1; }
        if (join) {
            struct ip_mreqn mreq = {.imr_ifindex = if_nametoindex(argv[2])};
            inet_pton(AF_INET, argv[3], &mreq.imr_multiaddr);
            if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq) < 0) {
                perror("IP_ADD_MEMBERSHIP");
                return 1;
            }
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    printf("bound\n");
    fflush(stdout);
    static char bufs[BATCH][SLOT];
    struct iovec iov[BATCH];
    struct mmsghdr msgs[BATCH];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < BATCH; i++) {
        iov[i].iov_base = bufs[i];
        iov[i].iov_len = SLOT;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    struct epoll_event events[256];
    unsigned long count = 0;
    double start = 0, end = 0, t = 0;
    for (;;) {
        int ready = epoll_wait(ep, events, 256, 1000);
        if (ready < 0 && errno != EINTR) { perror("epoll_wait"); return 1; }
        for (int e = 0; e < ready; e++) {
            int got;
            while ((got = recvmmsg(events[e].data.fd, msgs, BATCH, MSG_DONTWAIT, NULL)) > 0) {
                if (count == 0) { start = now(); end = start + seconds; }
                count += got;
            }
        }
        t = now();
        if (count > 0 && t >= end) break;
    }
    printf("udp_many: %lu datagrams in %.2f s = %.0f/s\n", count, t - start, count / (t - start));
    return 0;
}
