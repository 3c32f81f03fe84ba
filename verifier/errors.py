"""The verifier's refusals, raised by the engine and by the outcome sender alike."""


class VerificationError(Exception):
    """An action the engine refuses: wrong state, wrong department, too early."""
