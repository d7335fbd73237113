-- A copy of the database (odoo-bin neutralize, or a duplicate made by the database
-- manager) never talks to Safaricom as the original: its M-PESA credentials are
-- cleared, and new signing secrets make the original's callback URLs invalid here.
UPDATE payment_provider
   SET mpesa_consumer_key = NULL,
       mpesa_consumer_secret = NULL,
       mpesa_passkey = NULL,
       mpesa_security_credential = NULL,
       mpesa_b2c_security_credential = NULL,
       mpesa_access_token = NULL,
       mpesa_token_expiry = NULL,
       mpesa_webhook_secret = md5(random()::text || clock_timestamp()::text),
       mpesa_c2b_secret = md5(random()::text || clock_timestamp()::text)
 WHERE code = 'mpesa';
