/* stream_send: the baseline for bench-streams.sh. Attaches to an existing TAP device and
 * writes the frames tunmcastd's test streams are made of (Ethernet to the group's MAC, IPv4,
 * UDP, a 64-byte payload starting with the 24-byte TMC1 header), GROUPS streams in turn, each
 * frame stamped with its sequence number, the send time and its UDP checksum (the sum of the
 * rest kept, the header's words added), as fast as the device takes them for SECONDS.
 * usage: stream_send IFNAME GROUPS SECONDS */
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define PAYLOAD 64
#define FRAME (14 + 20 + 8 + PAYLOAD)

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

static uint32_t add_words(uint32_t sum, const uint8_t *p, size_t len) {
    for (size_t i = 0; i + 1 < len; i += 2) sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    return sum;
}

static uint16_t fold(uint32_t sum) {
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)sum;
}

static void put64(uint8_t *p, uint64_t v) {
    for (int i = 7; i >= 0; i--) { p[i] = v & 0xff; v >>= 8; }
}

struct stream { uint8_t frame[FRAME]; uint16_t base; uint64_t seq; };

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: stream_send IFNAME GROUPS SECONDS\n"); return 2; }
    int groups = atoi(argv[2]);
    double seconds = atof(argv[3]);
    int fd = open("/dev/net/tun", O_RDWR);
    if (fd < 0) { perror("/dev/net/tun"); return 1; }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    strncpy(ifr.ifr_name, argv[1], IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) { perror("TUNSETIFF"); return 1; }
    struct stream *s = calloc(groups, sizeof *s);
    uint8_t src[4] = {10, 99, 0, 251};
    for (int g = 0; g < groups; g++) {
        uint8_t *f = s[g].frame;
        uint8_t dst[4] = {239, 10, (uint8_t)(g >> 8), (uint8_t)g};
        uint8_t mac[6] = {1, 0, 0x5e, dst[1] & 0x7f, dst[2], dst[3]};
        memcpy(f, mac, 6);
        uint8_t smac[6] = {2, 0, 10, 99, 0, 251};
        memcpy(f + 6, smac, 6);
        f[12] = 0x08; f[13] = 0x00;
        uint8_t *ip = f + 14;
        ip[0] = 0x45; ip[2] = 0; ip[3] = 20 + 8 + PAYLOAD; ip[8] = 64; ip[9] = 17;
        memcpy(ip + 12, src, 4); memcpy(ip + 16, dst, 4);
        uint16_t ipsum = ~fold(add_words(0, ip, 20));
        ip[10] = ipsum >> 8; ip[11] = ipsum & 0xff;
        uint8_t *udp = ip + 20;
        udp[0] = 4000 >> 8; udp[1] = 4000 & 0xff; udp[2] = 5000 >> 8; udp[3] = 5000 & 0xff;
        udp[5] = 8 + PAYLOAD;
        uint8_t *payload = udp + 8;
        for (int i = 24; i < PAYLOAD; i++) payload[i] = (uint8_t)i;
        memcpy(payload, "TMC1", 4);
        payload[4] = g >> 24; payload[5] = g >> 16; payload[6] = g >> 8; payload[7] = g;
        /* Pseudo-header, UDP header, payload without sequence and time. */
        uint32_t sum = add_words(0, ip + 12, 8) + 17 + 8 + PAYLOAD;
        sum = add_words(sum, udp, 8 + PAYLOAD);
        s[g].base = fold(sum);
    }
    printf("attached\n");
    fflush(stdout);
    uint64_t start = now_ns(), end = start + (uint64_t)(seconds * 1e9), count = 0, errors = 0;
    for (int g = 0;; g = (g + 1) % groups) {
        struct stream *st = &s[g];
        uint8_t *payload = st->frame + 14 + 20 + 8;
        uint64_t t = now_ns();
        if (t >= end) break;
        put64(payload + 8, st->seq++);
        put64(payload + 16, t);
        uint16_t c = ~fold(add_words(st->base, payload + 8, 16));
        if (c == 0) c = 0xffff;
        st->frame[14 + 20 + 6] = c >> 8; st->frame[14 + 20 + 7] = c & 0xff;
        if (write(fd, st->frame, FRAME) == FRAME) count++; else errors++;
    }
    double elapsed = (now_ns() - start) / 1e9;
    printf("stream_send: %lu frames in %.2f s = %.0f frames/s (%lu refused)\n",
           (unsigned long)count, elapsed, count / elapsed, (unsigned long)errors);
    return 0;
}
