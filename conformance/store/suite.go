package store

// Register declares every spec of the store suite against t. Call it once,
// before Ginkgo's RunSpecs, from the program or test that runs the suite; it
// declares top-level containers and runs nothing itself.
func Register(t Target) {
	describeCRUD(t)
	describeCAS(t)
	describeList(t)
	describePrefix(t)
	describeValues(t)
	describeBadInput(t)
	describeWatch(t)
	describeReliableWatch(t)
	describeCompaction(t)
	describeConcurrency(t)
	describeLinearizability(t)
	describeDurability(t)
	describeTTL(t)
}
