"""boto3, used unmodified: ``AWS_ENDPOINT_URL`` points it at an emulator, nothing else changes."""
