/* tun_drain: the baseline for bench-datapath.sh. Attaches to an existing TUN device and
 * reads and drops packets; counts those read during SECONDS after the first one.
 * usage: tun_drain IFNAME SECONDS [tap]   (tap: a TAP device, Ethernet frames) */
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 3 && !(argc == 4 && strcmp(argv[3], "tap") == 0)) {
        fprintf(stderr, "usage: tun_drain IFNAME SECONDS [tap]\n");
        return 2;
    }
    double seconds = atof(argv[2]);
    int fd = open("/dev/net/tun", O_RDWR);
    if (fd < 0) { perror("/dev/net/tun"); return 1; }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    int tap = argc == 4;
    size_t at = tap ? 14 : 0; /* where the IP header starts */
    ifr.ifr_flags = (tap ? IFF_TAP : IFF_TUN) | IFF_NO_PI;
    strncpy(ifr.ifr_name, argv[1], IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) { perror("TUNSETIFF"); return 1; }
    /* Tell the script we are attached, then wait for the flood. */
    printf("attached\n");
    fflush(stdout);
    static char buf[65536];
    unsigned long count = 0;
    double start = 0, end = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0) { perror("read"); return 1; }
        /* Only IPv4 UDP: the kernel also sends router solicitations and reports. */
        if (n < (ssize_t)at + 20 || (buf[at] >> 4) != 4 || buf[at + 9] != 17) continue;
        if (count == 0) { start = now(); end = start + seconds; }
        count++;
        if ((count & 255) == 0 && now() >= end) break;
    }
    double elapsed = now() - start;
    printf("tun_drain: %lu packets in %.2f s = %.0f packets/s\n", count, elapsed, count / elapsed);
    return 0;
}
