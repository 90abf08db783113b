"""`make bench`: one collection of thousands of simulated Fargate nodes, measured against baselines."""
