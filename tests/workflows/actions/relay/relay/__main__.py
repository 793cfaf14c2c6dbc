"""Relay `message` to outputs, exercising inputs, outputs, masks, groups and the step summary."""

from ci_actions import runner


def main() -> None:
    try:
        message = runner.get_input("message", required=True)
        shout = runner.get_boolean_input("shout")
    except runner.InputError as exc:
        runner.fail(str(exc))
    relayed = message.upper() if shout else message
    with runner.group("relay"):
        runner.info(f"relaying {relayed!r}")
    runner.set_output("message", relayed)
    runner.set_output("lines", f"{relayed}\n{len(relayed)}")
    runner.append_summary(f"relayed `{relayed}`\n")


main()
