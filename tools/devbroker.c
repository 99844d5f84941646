/* devbroker: an in-memory Kafka broker for development and tests, built on
 * librdkafka's mock cluster (rdkafka_mock.h). It speaks the Kafka protocol on
 * 127.0.0.1, so the services use it through librdkafka exactly as they use Apache
 * Kafka. It is not durable: stopping it loses every message.
 *
 * SIGUSR1 takes every broker down, SIGUSR2 brings them back (the log is kept), so
 * tests can simulate an outage. SIGINT/SIGTERM stop it. */
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <pthread.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: devbroker [--topic NAME] [--partitions N] [--brokers N] [--bootstrap-file "
	    "PATH]\n"
	    "\n"
	    "An in-memory Kafka broker on librdkafka's mock cluster, for development and tests.\n"
	    "Listens on 127.0.0.1 (ephemeral port), creates the topic, prints the bootstrap\n"
	    "address on stdout and writes it to --bootstrap-file. Not durable.\n"
	    "\n"
	    "  --topic NAME           topic to create (default task-updates)\n"
	    "  --partitions N         its partition count, 1..256 (default 3)\n"
	    "  --brokers N            number of mock brokers, 1..5 (default 1)\n"
	    "  --bootstrap-file PATH  also write the bootstrap address to PATH\n"
	    "\n"
	    "Signals: SIGUSR1 takes the brokers down, SIGUSR2 brings them up, SIGINT/SIGTERM "
	    "stop.\n"
	    "Environment: LOG_LEVEL (debug|info|warn|error, default info).\n");
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	const char *topic = "task-updates", *bootfile = NULL;
	long partitions = 3, brokers = 1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--topic") && v) {
			topic = v;
			i++;
		} else if (!strcmp(a, "--partitions") && v && !parse_int(v, 1, 256, &partitions)) {
			i++;
		} else if (!strcmp(a, "--brokers") && v && !parse_int(v, 1, 5, &brokers)) {
			i++;
		} else if (!strcmp(a, "--bootstrap-file") && v) {
			bootfile = v;
			i++;
		} else {
			fprintf(stderr, "devbroker: bad argument \"%s\"\n", a);
			usage(stderr);
			return 2;
		}
	}
	int lvl = log_level_parse(getenv("LOG_LEVEL") ? getenv("LOG_LEVEL") : "info");
	if (lvl < 0) {
		fprintf(stderr, "LOG_LEVEL: not one of debug|info|warn|error|off\n");
		return 2;
	}
	log_setup("devbroker", (log_level)lvl);

	/* Block the signals before librdkafka starts its threads, so they inherit the
	 * mask and only sigwait() below sees them. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	char errstr[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (!rk) {
		log_error("could not create librdkafka handle", "{s:s}", "err", errstr);
		return 1;
	}
	rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, (int)brokers);
	if (!mc) {
		log_error("could not create mock cluster", "{}");
		rd_kafka_destroy(rk);
		return 1;
	}
	rd_kafka_resp_err_t err =
	    rd_kafka_mock_topic_create(mc, topic, (int)partitions, (int)brokers);
	if (err) {
		log_error("could not create topic", "{s:s, s:s}", "topic", topic, "err",
		          rd_kafka_err2str(err));
		rd_kafka_mock_cluster_destroy(mc);
		rd_kafka_destroy(rk);
		return 1;
	}
	const char *boot = rd_kafka_mock_cluster_bootstraps(mc);
	if (bootfile) {
		char tmp[4096];
		snprintf(tmp, sizeof(tmp), "%s.tmp", bootfile);
		FILE *f = fopen(tmp, "w");
		if (!f || fprintf(f, "%s\n", boot) < 0 || fclose(f) != 0 || rename(tmp, bootfile)) {
			log_error("could not write bootstrap file", "{s:s, s:s}", "path", bootfile,
			          "err", strerror(errno));
			rd_kafka_mock_cluster_destroy(mc);
			rd_kafka_destroy(rk);
			return 1;
		}
	}
	printf("%s\n", boot);
	fflush(stdout);
	log_info("devbroker up", "{s:s, s:s, s:i, s:i}", "bootstrap", boot, "topic", topic,
	         "partitions", (int)partitions, "brokers", (int)brokers);

	for (;;) {
		int sig = 0;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGUSR1 || sig == SIGUSR2) {
			for (int b = 1; b <= brokers; b++) {
				if (sig == SIGUSR1)
					rd_kafka_mock_broker_set_down(mc, b);
				else
					rd_kafka_mock_broker_set_up(mc, b);
			}
			log_info(sig == SIGUSR1 ? "brokers down" : "brokers up", "{s:i}", "brokers",
			         (int)brokers);
			continue;
		}
		if (sig == SIGHUP)
			continue;
		log_info("devbroker stopping", "{s:i}", "signal", sig);
		break;
	}
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(rk);
	return 0;
}
