"""What a customer sees: printed text of rendered pages, and the emails they got."""

import re
from html import unescape


def printed(html, css_class):
    """The text of the element of ``css_class`` in rendered HTML, as read."""
    if isinstance(html, bytes):
        html = html.decode()
    found = re.search(rf'class="{css_class}"[^>]*>(.*?)</strong>', str(html), re.DOTALL)
    if not found:
        return None
    text = unescape(re.sub(r"<[^>]+>", "", found.group(1)))
    return " ".join(text.replace("\xa0", " ").split())


def emails_to(env, partner, after):
    """Messages emailed to ``partner`` since message id ``after``, whatever sent them:
    notifications by email (any message type) and mails sent directly."""
    notified = env["mail.notification"].search(
        [
            ("mail_message_id", ">", after),
            ("res_partner_id", "=", partner.id),
            ("notification_type", "=", "email"),
        ]
    )
    mails = env["mail.mail"].search(
        [
            ("mail_message_id", ">", after),
            "|",
            ("recipient_ids", "in", partner.ids),
            ("email_to", "ilike", partner.email),
        ]
    )
    return notified.mail_message_id | mails.mail_message_id
