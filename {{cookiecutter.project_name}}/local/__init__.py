"""`make local`: API Gateway, SQS and the worker's event source on 127.0.0.1, with no AWS account and no docker.

assembly.py reads the synthesized stack, sqs.py is the local SQS (moto), <flavour>_api.py the API as synthesized,
poller.py the event source mapping that drives the real worker (runtime.py: one execution environment), and
emulator.py starts and stops them as one.
"""
