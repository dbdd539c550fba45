"""The new-device confirmation link is built by ``relatch.signin`` now (issue 16): a mail queued
before the upgrade names the builder's old path, which no longer imports. Point such rows at
the new path, so they are delivered with their link instead of failing."""

from django.db import migrations

OLD = "relatch.mfa.newdevice.confirmation.confirmation_link"
NEW = "relatch.signin.newdevice.confirmation.confirmation_link"


def _rename(apps, old: str, new: str) -> None:
    outgoing = apps.get_model("notify", "OutgoingEmail")
    outgoing.objects.filter(link_builder=old).update(link_builder=new)


def forwards(apps, schema_editor) -> None:
    _rename(apps, OLD, NEW)


def backwards(apps, schema_editor) -> None:
    _rename(apps, NEW, OLD)


class Migration(migrations.Migration):
    dependencies = [("notify", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
