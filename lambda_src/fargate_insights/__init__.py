"""Serverless Container Insights collector for Amazon EKS on Fargate."""

__version__ = "0.1.0"
