"""Relay `message` to outputs, exercising inputs, outputs, masks, groups and the step summary."""

from ci_actions import declared, runner
from ci_actions.declared import Input

INPUTS = declared.table(Input("message", "m", required=True),
                        Input("shout", "s", default="false", parse=declared.boolean))


def main() -> None:
    try:
        values = runner.read_inputs(INPUTS)
    except runner.InputError as exc:
        runner.fail(str(exc))
    message, shout = values["message"], values["shout"]
    relayed = message.upper() if shout else message
    with runner.group("relay"):
        runner.info(f"relaying {relayed!r}")
    runner.set_output("message", relayed)
    runner.set_output("lines", f"{relayed}\n{len(relayed)}")
    runner.append_summary(f"relayed `{relayed}`\n")


main()
