/** The local Redis Cluster of the tests (and of `npm run bench`) lives in scripts/lib. */
export * from '../../scripts/lib/redis-cluster.js'
