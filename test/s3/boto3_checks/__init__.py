"""boto3 end-to-end checks, grouped by behaviour; run through ../boto3_suite.py."""
