/* busy_echo.c: the plainest busy-polling UDP echo server, the baseline
 * `dgram listen --echo --busy-poll` is measured against: recvfrom with
 * MSG_DONTWAIT in a loop that never sleeps, sendto, nothing else.
 * Usage: busy_echo PORT   (binds 127.0.0.1:PORT, spins until killed) */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: busy_echo PORT\n");
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        perror("busy_echo: bind");
        return 1;
    }
    char buf[65536];
    for (;;) {
        struct sockaddr_in peer;
        socklen_t len = sizeof peer;
        ssize_t n = recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&peer, &len);
        if (n >= 0)
            sendto(fd, buf, n, 0, (struct sockaddr *)&peer, len);
    }
}
