/* recvloop.c: the plainest UDP receiver, the baseline for dgram listen's
 * receive rate: recvfrom in a loop, counting, until nothing has come for
 * IDLE_MS after the first datagram; then prints the count and the kernel's
 * drop count for the socket (SO_MEMINFO).
 * Usage: recvloop PORT [RCVBUF]   (binds 127.0.0.1:PORT) */
#include <arpa/inet.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>

#define IDLE_MS 500

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: recvloop PORT [RCVBUF]\n");
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (argc > 2) {
        int rcvbuf = atoi(argv[2]);
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        perror("recvloop: bind");
        return 1;
    }
    char buf[65536];
    unsigned long long received = 0;
    struct timeval idle = {.tv_sec = 0, .tv_usec = IDLE_MS * 1000};
    for (;;) {
        struct sockaddr_in peer;
        socklen_t len = sizeof peer;
        ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&peer, &len);
        if (n >= 0) {
            if (received++ == 0)
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &idle, sizeof idle);
        } else if (received > 0) {
            break;
        }
    }
    unsigned int meminfo[SK_MEMINFO_VARS];
    socklen_t mlen = sizeof meminfo;
    unsigned int drops = 0;
    if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, meminfo, &mlen) == 0)
        drops = meminfo[SK_MEMINFO_DROPS];
    printf("received %llu dropped %u\n", received, drops);
    return 0;
}
