/* nfq-delay QUEUE DELAY_MS: hold every packet that iptables sends to NFQUEUE number QUEUE for
 * DELAY_MS milliseconds, then let it through, in order: a link's latency on kernels built
 * without netem (tc's "Specified qdisc kind is unknown"). Used by bench/hosts.py, which builds it
 * with `cc -O2 -o nfq-delay nfq-delay.c -lnetfilter_queue -lpthread` (Debian's
 * libnetfilter-queue-dev) and adds the rule with --queue-bypass, so packets pass undelayed when
 * this program is not running. Runs until killed. */
#include <arpa/inet.h>
#include <errno.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#define CAP 65536u

struct held {
    uint32_t id;
    struct timespec due;
};

static struct held ring[CAP];
static unsigned head, tail; /* ring[tail..head) are held, oldest first */
static pthread_mutex_t ring_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ring_cv = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t verdict_mu = PTHREAD_MUTEX_INITIALIZER;
static struct nfq_q_handle *queue;
static long delay_ns;

static void accept_packet(uint32_t id) {
    pthread_mutex_lock(&verdict_mu);
    nfq_set_verdict(queue, id, NF_ACCEPT, 0, NULL);
    pthread_mutex_unlock(&verdict_mu);
}

static int on_packet(struct nfq_q_handle *q, struct nfgenmsg *msg, struct nfq_data *nfa, void *data) {
    (void)q, (void)msg, (void)data;
    struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
    if (ph == NULL) return 0;
    struct held item = {.id = ntohl(ph->packet_id)};
    clock_gettime(CLOCK_MONOTONIC, &item.due);
    item.due.tv_nsec += delay_ns;
    item.due.tv_sec += item.due.tv_nsec / 1000000000L;
    item.due.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&ring_mu);
    if (head - tail >= CAP) { /* full: let it through now rather than drop it */
        pthread_mutex_unlock(&ring_mu);
        accept_packet(item.id);
        return 0;
    }
    ring[head++ % CAP] = item;
    pthread_cond_signal(&ring_cv);
    pthread_mutex_unlock(&ring_mu);
    return 0;
}

static void *release(void *arg) {
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&ring_mu);
        while (head == tail) pthread_cond_wait(&ring_cv, &ring_mu);
        struct held item = ring[tail % CAP];
        pthread_mutex_unlock(&ring_mu);
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &item.due, NULL) == EINTR) {
        }
        accept_packet(item.id);
        pthread_mutex_lock(&ring_mu);
        tail++;
        pthread_mutex_unlock(&ring_mu);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s QUEUE DELAY_MS\n", argv[0]);
        return 2;
    }
    int number = atoi(argv[1]);
    delay_ns = atol(argv[2]) * 1000000L;
    struct nfq_handle *h = nfq_open();
    if (h == NULL) {
        perror("nfq_open");
        return 1;
    }
    queue = nfq_create_queue(h, (uint16_t)number, &on_packet, NULL);
    if (queue == NULL) {
        perror("nfq_create_queue");
        return 1;
    }
    if (nfq_set_mode(queue, NFQNL_COPY_META, 0) < 0) { /* ids only: no payload copied */
        perror("nfq_set_mode");
        return 1;
    }
    nfq_set_queue_maxlen(queue, CAP);
    int fd = nfq_fd(h);
    int size = 8 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
    pthread_t releaser;
    pthread_create(&releaser, NULL, release, NULL);
    fprintf(stderr, "nfq-delay: queue %d, %s ms\n", number, argv[2]);
    char buf[65536];
    for (;;) {
        ssize_t got = recv(fd, buf, sizeof buf, 0);
        if (got >= 0) {
            nfq_handle_packet(h, buf, (int)got);
        } else if (errno != ENOBUFS && errno != EINTR) {
            perror("recv");
            return 1;
        }
    }
}
