"""Everything the engine says, in plain English and Welsh. Other languages fall back to English.

Messages are short: many residents read them on old phones, and every 153 characters is another SMS.
"""

from __future__ import annotations

from datetime import date

PHRASES: dict[str, dict[str, str]] = {
    "intro": {
        "en": "{title} ({lead}). {purpose} You can influence: {can}. You can't change: {cannot}. "
        "Closes {closes}. Questions? {contact}. Reply STOP to stop.",
        "cy": "{title} ({lead}). {purpose} Gallwch ddylanwadu ar: {can}. Ni allwch newid: {cannot}. "
        "Yn cau {closes}. Cwestiynau? {contact}. Atebwch STOP i stopio.",
    },
    "other_language": {"en": " Reply CYMRAEG for Welsh.", "cy": " Reply ENGLISH for English."},
    "not_open_yet": {
        "en": "{title} opens on {opens}. Please text {keyword} again then.",
        "cy": "Mae {title} yn agor ar {opens}. Tecstiwch {keyword} eto bryd hynny.",
    },
    "closed": {
        "en": "Sorry, {title} closed on {closes}. Thank you for your interest.",
        "cy": "Mae'n ddrwg gennym, caeodd {title} ar {closes}. Diolch am eich diddordeb.",
    },
    "already_done": {
        "en": "You have already taken part in {title}. Thank you!",
        "cy": "Rydych eisoes wedi cymryd rhan yn {title}. Diolch!",
    },
    "resume": {
        "en": "You're part way through {title}. Here is the next question:",
        "cy": "Rydych hanner ffordd drwy {title}. Dyma'r cwestiwn nesaf:",
    },
    "reply_number": {"en": "Reply with a number.", "cy": "Atebwch gyda rhif."},
    "reply_scale": {"en": "Reply {low} to {high}.", "cy": "Atebwch {low} i {high}."},
    "reply_yesno": {"en": "Reply YES or NO.", "cy": "Atebwch IE neu NA."},
    "reply_skip": {"en": " Or reply SKIP.", "cy": " Neu atebwch SKIP."},
    "retry_choice": {
        "en": "Sorry, please reply with a number from 1 to {count}.",
        "cy": "Mae'n ddrwg gennym, atebwch gyda rhif o 1 i {count}.",
    },
    "retry_scale": {
        "en": "Sorry, please reply with a number from {low} to {high}.",
        "cy": "Mae'n ddrwg gennym, atebwch gyda rhif o {low} i {high}.",
    },
    "retry_yesno": {"en": "Sorry, please reply YES or NO.", "cy": "Mae'n ddrwg gennym, atebwch IE neu NA."},
    "retry_text_empty": {
        "en": "Sorry, please reply with your answer in words.",
        "cy": "Mae'n ddrwg gennym, atebwch mewn geiriau.",
    },
    "retry_text_long": {
        "en": "Sorry, that is too long. Please keep it under {limit} characters.",
        "cy": "Mae'n ddrwg gennym, mae hynny'n rhy hir. Cadwch o dan {limit} nod.",
    },
    "moving_on": {"en": "Let's move on.", "cy": "Awn ymlaen."},
    "thanks": {
        "en": "Thank you, your answers are saved. After {title} closes on {closes} we'll tell you what "
        "changed, and what couldn't and why.",
        "cy": "Diolch, mae eich atebion wedi'u cadw. Ar ôl i {title} gau ar {closes} byddwn yn dweud wrthych "
        "beth newidiodd, a beth na allai newid a pham.",
    },
    "stopped": {
        "en": "You won't get any more messages from {council}. Reply START to join again.",
        "cy": "Ni fyddwch yn cael mwy o negeseuon gan {council}. Atebwch START i ymuno eto.",
    },
    "restarted": {
        "en": "Welcome back. You'll get messages from {council} again. Reply STOP to stop.",
        "cy": "Croeso yn ôl. Byddwch yn cael negeseuon gan {council} eto. Atebwch STOP i stopio.",
    },
    "help_survey": {
        "en": "{title} is run by {lead}: {contact}. Reply STOP to stop messages.",
        "cy": "{lead} sy'n cynnal {title}: {contact}. Atebwch STOP i stopio negeseuon.",
    },
    "help_general": {
        "en": "This is {council}.{contact} Reply STOP to stop messages.",
        "cy": "{council} yw hwn.{contact} Atebwch STOP i stopio negeseuon.",
    },
    "menu": {"en": "Text {offers} to take part.", "cy": "Tecstiwch {offers} i gymryd rhan."},
    "menu_item": {"en": "{keyword} for {title}", "cy": "{keyword} ar gyfer {title}"},
    "no_surveys": {
        "en": "Thanks for your message. There are no open surveys right now. Reply STOP to stop.",
        "cy": "Diolch am eich neges. Does dim arolygon ar agor ar hyn o bryd. Atebwch STOP i stopio.",
    },
    "reminder": {
        "en": "Reminder: you haven't finished {title}. Reply to carry on:",
        "cy": "Nodyn atgoffa: nid ydych wedi gorffen {title}. Atebwch i barhau:",
    },
    "or": {"en": " or ", "cy": " neu "},
    "text_only": {
        "en": "Sorry, I can only read typed messages. Please type your answer.",
        "cy": "Mae'n ddrwg gennym, dim ond negeseuon wedi'u teipio y gallaf eu darllen. Teipiwch eich ateb.",
    },
    "linked": {
        "en": "Thank you. Your phone number is linked, so your choices (like STOP) apply to texts and "
        "Telegram.",
        "cy": "Diolch. Mae eich rhif ffôn wedi'i gysylltu, felly mae eich dewisiadau (fel STOP) yn "
        "berthnasol i negeseuon testun a Telegram.",
    },
    "stale_button": {
        "en": "That question has already been answered.",
        "cy": "Mae'r cwestiwn hwnnw wedi'i ateb.",
    },
    "share_number": {
        "en": "Do you also text us? Share your phone number and a STOP or a choice you make here applies to "
        "your texts too. It is optional.",
        "cy": "Ydych chi hefyd yn anfon neges destun atom? Rhannwch eich rhif ffôn ac mae STOP neu ddewis a "
        "wnewch yma yn berthnasol i'ch negeseuon testun hefyd. Mae'n ddewisol.",
    },
    "pulse_thanks": {
        "en": "Thank you for telling us. It helps us do better next time.",
        "cy": "Diolch am ddweud wrthym. Mae'n ein helpu i wneud yn well y tro nesaf.",
    },
    "choose_language": {
        "en": "Which language would you like? Reply CYMRAEG for Welsh or ENGLISH for English.",
        "cy": "Pa iaith hoffech chi? Atebwch CYMRAEG am Gymraeg neu ENGLISH am Saesneg.",
    },
}

MONTHS = {
    "en": [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
    "cy": [
        "Ionawr",
        "Chwefror",
        "Mawrth",
        "Ebrill",
        "Mai",
        "Mehefin",
        "Gorffennaf",
        "Awst",
        "Medi",
        "Hydref",
        "Tachwedd",
        "Rhagfyr",
    ],
}


def say(key: str, language: str, **values: object) -> str:
    """A phrase in ``language`` (English when there is no translation), filled in."""
    phrase = PHRASES[key]
    return (phrase.get(language) or phrase["en"]).format(**values)


def say_date(day: date, language: str) -> str:
    months = MONTHS.get(language, MONTHS["en"])
    return f"{day.day} {months[day.month - 1]} {day.year}"
