/* flood.c: the plainest UDP sender, the load for the receive-rate rows of
 * bench-vs-peers.sh: sendto in a loop for SECONDS, as fast as the kernel
 * takes them (or until COUNT were sent), then prints how many were sent and
 * not sent (EAGAIN/ENOBUFS).
 * Usage: flood PORT SIZE SECONDS [COUNT]   (sends to 127.0.0.1:PORT) */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: flood PORT SIZE SECONDS [COUNT]\n");
        return 2;
    }
    int size = atoi(argv[2]);
    double seconds = atof(argv[3]);
    unsigned long long count = argc == 5 ? strtoull(argv[4], NULL, 10) : 0;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    char buf[65536];
    memset(buf, 'x', sizeof buf);
    unsigned long long sent = 0, not_sent = 0;
    double end = now() + seconds;
    while (1) {
        /* Look at the clock every 1024 datagrams. */
        if ((sent + not_sent) % 1024 == 0 && now() >= end)
            break;
        if (count && sent == count)
            break;
        if (sendto(fd, buf, size, 0, (struct sockaddr *)&to, sizeof to) == size)
            sent++;
        else
            not_sent++;
    }
    printf("sent %llu not_sent %llu\n", sent, not_sent);
    return 0;
}
