"""Property-based fuzzing of the statement parsers: any file gets a StatementError
naming where it went wrong, or a statement; never a crash."""

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odoo.tests import BaseCase, tagged

from ..statement import StatementError, parse_pull_rows, parse_statement

FUZZ = settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,  # the same cases every run: CI stays reproducible
)
HEADER = (
    "Receipt No.,Completion Time,Initiation Time,Details,Transaction Status,Paid In,"
    "Withdrawn,Balance,Balance Confirmed,Reason Type,Other Party Info,"
    "Linked Transaction ID,A/C No.\n"
)
cell = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12),
    st.sampled_from(
        [
            "Completed",
            "Cancelled",
            "1,000.00",
            "-5.00",
            "21-11-2023 12:13:25",
            '"1,0x0"',
            "",
            "RKL51ZDR4F",
            "2547****126 - JANE",
        ]
    ),
)
rows = st.lists(st.lists(cell, min_size=0, max_size=14), max_size=8)


@tagged("post_install", "-at_install")
class TestStatementFuzz(BaseCase):
    @FUZZ
    @given(st.binary(max_size=400))
    def test_any_bytes(self, content):
        with contextlib.suppress(StatementError):  # a refusal is fine, a crash is not
            parse_statement(content, "statement.csv")

    @FUZZ
    @given(rows)
    def test_csv_shaped_rows(self, table):
        body = HEADER + "".join(",".join(r) + "\n" for r in table)
        try:
            statement = parse_statement(body.encode(), "statement.csv")
        except StatementError as error:
            self.assertTrue(str(error))
            return
        for row in statement.rows:  # what is accepted is well-formed
            self.assertTrue(row.receipt)
            self.assertGreaterEqual(row.paid_in, 0)
            self.assertGreaterEqual(row.withdrawn, 0)

    @FUZZ
    @given(
        st.lists(
            st.dictionaries(
                st.sampled_from(
                    [
                        "transactionId",
                        "trxDate",
                        "msisdn",
                        "sender",
                        "transactiontype",
                        "billreference",
                        "amount",
                    ]
                ),
                st.one_of(
                    st.none(), st.integers(), st.text(max_size=25), st.booleans()
                ),
            ),
            max_size=5,
        )
    )
    def test_pull_rows(self, data):
        with contextlib.suppress(StatementError):
            parse_pull_rows(data)
