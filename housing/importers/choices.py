"""What people write in a spreadsheet cell for a choice field, mapped to the stored value.

Each choice is recognised by its stored value, its label in every configured language and
the Chinese words county registers actually use (土木, 户主, C级 ...), which the catalogue
may not hold word for word.
"""

import functools

from django.conf import settings
from django.utils import translation

from housing.importers.readers import value_key
from housing.models import DisabilityLevel, Relation, SafetyGrade, StructureType

STRUCTURE_WORDS = {
    StructureType.MASONRY: ("砖混", "砖混结构", "砌体", "砌体结构", "混合结构"),
    StructureType.BRICK_WOOD: ("砖木", "砖木结构"),
    StructureType.EARTH_WOOD: ("土木", "土木结构", "土坯", "土坯房", "生土"),
    StructureType.TIMBER: ("木", "木结构", "木构"),
    StructureType.STONE: ("石", "石结构", "石木", "石木结构", "石砌"),
    StructureType.CONCRETE_FRAME: ("框架", "框架结构", "钢筋混凝土", "混凝土框架", "钢混"),
    StructureType.CAVE: ("窑洞", "窑"),
    StructureType.OTHER: ("其他", "其它"),
}

RELATION_WORDS = {
    Relation.HEAD: ("户主", "本人", "self"),
    Relation.SPOUSE: ("配偶", "妻", "妻子", "夫", "丈夫", "wife", "husband"),
    Relation.CHILD: (
        "子女",
        "子",
        "女",
        "儿子",
        "女儿",
        "长子",
        "长女",
        "次子",
        "次女",
        "son",
        "daughter",
    ),
    Relation.CHILD_IN_LAW: ("儿媳", "女婿", "媳妇", "子女配偶"),
    Relation.GRANDCHILD: ("孙子女", "孙子", "孙女", "外孙", "外孙子", "外孙女"),
    Relation.PARENT: ("父母", "父亲", "母亲", "父", "母", "father", "mother"),
    Relation.GRANDPARENT: ("祖父母", "祖父", "祖母", "外祖父", "外祖母", "外祖父母"),
    Relation.SIBLING: ("兄弟姐妹", "兄弟", "姐妹", "兄", "弟", "姐", "妹"),
    Relation.OTHER: ("其他", "其它"),
}

DISABILITY_WORDS = {
    DisabilityLevel.NONE: ("无", "否", "none", "no", "0"),
    DisabilityLevel.LEVEL_1: ("一级", "1级", "残疾一级", "一级残疾", "grade1", "level1"),
    DisabilityLevel.LEVEL_2: ("二级", "2级", "残疾二级", "二级残疾", "grade2", "level2"),
    DisabilityLevel.LEVEL_3: ("三级", "3级", "残疾三级", "三级残疾", "grade3", "level3"),
    DisabilityLevel.LEVEL_4: ("四级", "4级", "残疾四级", "四级残疾", "grade4", "level4"),
}

GRADE_WORDS = {
    SafetyGrade.A: ("A级", "a级"),
    SafetyGrade.B: ("B级", "b级"),
    SafetyGrade.C: ("C级", "c级", "局部危房"),
    SafetyGrade.D: ("D级", "d级", "整幢危房"),
    SafetyGrade.NOT_APPRAISED: ("未鉴定", "not appraised"),
}


@functools.cache
def _aliases(choices_name: str) -> dict[str, str]:
    choices, words = {
        "structure": (StructureType, STRUCTURE_WORDS),
        "relation": (Relation, RELATION_WORDS),
        "disability": (DisabilityLevel, DISABILITY_WORDS),
        "grade": (SafetyGrade, GRADE_WORDS),
    }[choices_name]
    aliases: dict[str, str] = {}
    for value, label in choices.choices:
        for language, _name in settings.LANGUAGES:
            with translation.override(language):
                aliases[value_key(str(label))] = value
        for word in words.get(value, ()):
            aliases[value_key(word)] = value
        if value:
            aliases[value_key(value)] = value
    return aliases


def choice_value(kind: str, text: str) -> str | None:
    """The stored value for `text`, or None when it matches no choice of `kind`."""
    return _aliases(kind).get(value_key(text))


def choice_list(kind: str) -> str:
    """The accepted stored values, for an error message."""
    choices = {
        "structure": StructureType,
        "relation": Relation,
        "disability": DisabilityLevel,
        "grade": SafetyGrade,
    }[kind]
    return ", ".join(f"{value} ({label})" for value, label in choices.choices if value)
