/* pingpong.c: the plainest UDP ping-pong client, the baseline dgram ping
 * is measured against: send, wait for the reply, time it, N times.
 * Usage: pingpong PORT COUNT SIZE   (to 127.0.0.1:PORT; prints the median
 * round trip in microseconds, and how many replies did not come in 1 s) */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: pingpong PORT COUNT SIZE\n");
        return 2;
    }
    int count = atoi(argv[2]), size = atoi(argv[3]);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    struct timeval timeout = {.tv_sec = 1};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    char *buf = calloc(1, size > 65536 ? size : 65536);
    double *rtt = calloc(count, sizeof *rtt);
    int got = 0, lost = 0;
    for (int i = 0; i < count; i++) {
        struct timespec t0, t1;
        memcpy(buf, &i, sizeof i);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        sendto(fd, buf, size, 0, (struct sockaddr *)&to, sizeof to);
        if (recv(fd, buf, 65536, 0) < 0) {
            lost++;
            continue;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        rtt[got++] = (t1.tv_sec - t0.tv_sec) * 1e6 + (t1.tv_nsec - t0.tv_nsec) / 1e3;
    }
    qsort(rtt, got, sizeof *rtt, cmp);
    printf("p50_us %.3f lost %d\n", got ? rtt[(got + 1) / 2 - 1] : 0.0, lost);
    return 0;
}
