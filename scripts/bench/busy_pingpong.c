/* busy_pingpong.c: the plainest busy-polling UDP ping-pong client, the
 * baseline `dgram ping --busy-poll` is measured against: send, spin on
 * recv with MSG_DONTWAIT until the reply comes (or 1 s passes), time it,
 * N times.
 * Usage: busy_pingpong PORT COUNT SIZE   (to 127.0.0.1:PORT; prints the
 * median round trip in microseconds, and how many replies did not come
 * within 1 s) */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double since(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1e6 + (t1.tv_nsec - t0->tv_nsec) / 1e3;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: busy_pingpong PORT COUNT SIZE\n");
        return 2;
    }
    int count = atoi(argv[2]), size = atoi(argv[3]);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    char *buf = calloc(1, size > 65536 ? size : 65536);
    double *rtt = calloc(count, sizeof *rtt);
    int got = 0, lost = 0;
    for (int i = 0; i < count; i++) {
        struct timespec t0;
        memcpy(buf, &i, sizeof i);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        sendto(fd, buf, size, 0, (struct sockaddr *)&to, sizeof to);
        ssize_t n;
        double t;
        /* The clock is read only when nothing came: on the round trip,
         * a reply waits for one recv call at most. */
        while ((n = recv(fd, buf, 65536, MSG_DONTWAIT)) < 0 &&
               (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) &&
               since(&t0) < 1e6)
            ;
        if (n < 0) {
            lost++;
            continue;
        }
        t = since(&t0);
        rtt[got++] = t;
    }
    qsort(rtt, got, sizeof *rtt, cmp);
    printf("p50_us %.3f lost %d\n", got ? rtt[(got + 1) / 2 - 1] : 0.0, lost);
    return 0;
}
