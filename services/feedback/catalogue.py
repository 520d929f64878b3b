"""Every string the unsubscribe pages show, per language: translate here, nowhere else.

Keys are `<page>.<part>`; `{address}` is the recipient's masked address. A test checks that
every language has every key and the same placeholders, so a new language is one dict.
"""

from __future__ import annotations

DEFAULT_LANGUAGE = "en"

# Each language's own name, for the language switcher.
LANGUAGE_NAMES = {"en": "English", "fr": "Français", "de": "Deutsch"}

CATALOGUE: dict[str, dict[str, str]] = {
    "en": {
        "site.title": "Email preferences",
        "site.languages": "Language",
        "confirm.heading": "Unsubscribe from marketing emails?",
        "confirm.body": "We will stop sending marketing emails to {address}. Emails about your "
        "orders and your account will still reach you.",
        "confirm.button": "Unsubscribe",
        "done.heading": "You are unsubscribed",
        "done.body": "We will send no more marketing emails to {address}. An email that was "
        "already on its way may still arrive.",
        "already.heading": "You are already unsubscribed",
        "already.body": "We send no marketing emails to {address}.",
        "invalid.heading": "This link does not work",
        "invalid.body": "The link is incomplete or has been changed, so nothing was changed. "
        "Please use the unsubscribe link in one of our recent emails.",
        "expired.heading": "This link has expired",
        "expired.body": "Nothing was changed. Please use the unsubscribe link in one of our "
        "more recent emails.",
        "bad_request.heading": "Nothing was changed",
        "bad_request.body": "Please use the button on the unsubscribe page.",
        "unavailable.heading": "Please try again in a few minutes",
        "unavailable.body": "We could not record your request just now, so nothing has been "
        "changed yet.",
    },
    "fr": {
        "site.title": "Préférences d'e-mail",
        "site.languages": "Langue",
        "confirm.heading": "Se désabonner des e-mails marketing\u00a0?",
        "confirm.body": "Nous n'enverrons plus d'e-mails marketing à {address}. Les e-mails "
        "concernant vos commandes et votre compte continueront de vous parvenir.",
        "confirm.button": "Me désabonner",
        "done.heading": "Votre désabonnement est enregistré",
        "done.body": "Nous n'enverrons plus d'e-mails marketing à {address}. Un e-mail déjà "
        "en route peut encore arriver.",
        "already.heading": "Ce désabonnement est déjà enregistré",
        "already.body": "Nous n'envoyons pas d'e-mails marketing à {address}.",
        "invalid.heading": "Ce lien ne fonctionne pas",
        "invalid.body": "Le lien est incomplet ou a été modifié\u00a0; rien n'a été changé. "
        "Utilisez le lien de désabonnement de l'un de nos e-mails récents.",
        "expired.heading": "Ce lien a expiré",
        "expired.body": "Rien n'a été changé. Utilisez le lien de désabonnement de l'un de nos "
        "e-mails plus récents.",
        "bad_request.heading": "Rien n'a été changé",
        "bad_request.body": "Utilisez le bouton de la page de désabonnement.",
        "unavailable.heading": "Veuillez réessayer dans quelques minutes",
        "unavailable.body": "Nous n'avons pas pu enregistrer votre demande pour l'instant\u00a0; "
        "rien n'a encore été changé.",
    },
    "de": {
        "site.title": "E-Mail-Einstellungen",
        "site.languages": "Sprache",
        "confirm.heading": "Marketing-E-Mails abbestellen?",
        "confirm.body": "Wir senden keine Marketing-E-Mails mehr an {address}. E-Mails zu Ihren "
        "Bestellungen und Ihrem Konto erhalten Sie weiterhin.",
        "confirm.button": "Abbestellen",
        "done.heading": "Sie sind abgemeldet",
        "done.body": "Wir senden keine Marketing-E-Mails mehr an {address}. Eine E-Mail, die "
        "schon unterwegs war, kann noch ankommen.",
        "already.heading": "Sie sind bereits abgemeldet",
        "already.body": "Wir senden keine Marketing-E-Mails an {address}.",
        "invalid.heading": "Dieser Link funktioniert nicht",
        "invalid.body": "Der Link ist unvollständig oder wurde verändert, daher wurde nichts "
        "geändert. Bitte verwenden Sie den Abmeldelink in einer unserer aktuellen E-Mails.",
        "expired.heading": "Dieser Link ist abgelaufen",
        "expired.body": "Es wurde nichts geändert. Bitte verwenden Sie den Abmeldelink in einer "
        "unserer neueren E-Mails.",
        "bad_request.heading": "Es wurde nichts geändert",
        "bad_request.body": "Bitte verwenden Sie die Schaltfläche auf der Abmeldeseite.",
        "unavailable.heading": "Bitte versuchen Sie es in einigen Minuten erneut",
        "unavailable.body": "Wir konnten Ihre Anfrage gerade nicht speichern, es wurde noch "
        "nichts geändert.",
    },
}

LANGUAGES = tuple(CATALOGUE)
