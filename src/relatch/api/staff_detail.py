"""What the staff API shows of one request: the desk's read model (relatch.recovery.desk.
queries), the same the detail page renders, as JSON. Read-only."""

from relatch.api.schemas import RequestDetailOut, StaffProofOut
from relatch.recovery.desk.queries import request_detail, staff_proof
from relatch.recovery.models import RecoveryProof, RecoveryRequest


def proof_out(proof: RecoveryProof) -> StaffProofOut:
    return StaffProofOut.model_validate(staff_proof(proof))


def detail_of(recovery: RecoveryRequest) -> RequestDetailOut:
    recovery.refresh_from_db()  # an action may have just changed it
    return RequestDetailOut.model_validate(request_detail(recovery))
