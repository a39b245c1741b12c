// The language-server test and the edit timing would compete for the same two cores: run them one after the other.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
