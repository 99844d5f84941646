/* cluster: a Kafka cluster of a test's own (tools/kafka/cluster.sh), for tests that
 * need more nodes than the harness's one-node cluster. cluster_up points
 * tests/support/broker.h at it (KAFKA_DIR, KAFKA_BROKERS, KAFKA_NODES in this
 * process's environment, inherited by every service the test starts). Each Check
 * test runs in its own process, so the change ends with the test. */
#ifndef SYS_TEST_CLUSTER_H
#define SYS_TEST_CLUSTER_H

typedef struct cluster {
	char dir[512];     /* cluster.sh's DIR: $TEST_RUN_DIR/kafka<nodes>-<unique> */
	char brokers[512]; /* its KAFKA_BROKERS */
	int nodes;         /* its KAFKA_NODES */
	long up_ms;        /* how long `cluster.sh up` took */
} cluster;

/* Starts nodes nodes (replication factor min(nodes, 3), min.insync.replicas 2 from
 * 3 nodes, no unclean leader election: cluster.sh's settings) and waits until every
 * one has started. First forks a guard that runs `cluster.sh down` when this test
 * process ends, however it ends (a failed assertion, Check's timeout, a crash), so
 * no JVM outlives the test. Fails the test on error, with the line of a node's log
 * that says why. @locality the test's main thread (children die with the thread
 * that forked them). */
void cluster_up(cluster *c, int nodes);

/* Stops every node (`cluster.sh down`: SIGTERM, SIGKILL after 30 s) and waits.
 * Fails the test when cluster.sh does. */
void cluster_down(cluster *c);

#endif
