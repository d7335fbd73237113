"""payment.transaction.mpesa_receipt became mpesa_receipt_code: the field holds a
receipt code, while mpesa.receipt is the ledger. Rename the column and the field's
records before the registry loads, so the codes stay and nothing is dropped."""


def migrate(cr, version):
    cr.execute(
        """SELECT 1 FROM information_schema.columns
            WHERE table_name = 'payment_transaction' AND column_name = 'mpesa_receipt'"""
    )
    if not cr.fetchone():
        return
    cr.execute(
        "ALTER TABLE payment_transaction RENAME COLUMN mpesa_receipt TO mpesa_receipt_code"
    )
    cr.execute(
        """UPDATE ir_model_fields SET name = 'mpesa_receipt_code'
            WHERE model = 'payment.transaction' AND name = 'mpesa_receipt'"""
    )
    cr.execute(
        """UPDATE ir_model_data
              SET name = 'field_payment_transaction__mpesa_receipt_code'
            WHERE module = 'mpesa_payment' AND model = 'ir.model.fields'
              AND name = 'field_payment_transaction__mpesa_receipt'"""
    )
