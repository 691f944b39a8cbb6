"""YAML as ``yaml.safe_load`` reads it, but refusing a key given twice in one mapping, and fast on big files."""

from __future__ import annotations


def _unique_key_loader():
    """A safe YAML loader (libyaml when available) that refuses a key given twice in one mapping."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class UniqueKeyLoader(base):
        def construct_mapping(self, node, deep=False):
            seen = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    continue  # only scalar keys are compared; PyYAML itself refuses unhashable ones
                line = key_node.start_mark.line + 1
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key_node.value!r} at line {line} "
                        f"(first given at line {seen[key_node.value]}); keep one of them", key_node.start_mark)
                seen[key_node.value] = line
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


class _Unusual(Exception):
    """YAML that the fast reader leaves to the full loader: anchors, aliases, explicit tags, merge keys, several documents."""


_PLAIN_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "timestamp")}


def yaml_from_events(text: str):
    """The document built straight from libyaml's events (several times faster than composing nodes first).

    Scalars are typed by PyYAML's own resolver and constructors, so the result equals ``yaml.safe_load``'s;
    a key given twice in one mapping raises. Anything unusual raises :class:`_Unusual`.
    """
    import yaml
    from yaml import events

    resolver, constructor = yaml.resolver.Resolver(), yaml.constructor.SafeConstructor()
    stack: list[list] = []  # per open container: [object, pending key or _Unusual, {key: line}]
    documents, root = 0, []

    def add(obj, mark) -> None:
        if not stack:
            root.append(obj)
            return
        top = stack[-1]
        if isinstance(top[0], list):
            top[0].append(obj)
        elif top[1] is _Unusual:
            try:
                first = top[2].get(obj)
            except TypeError:
                raise _Unusual from None  # a list or mapping as a key
            if first is not None:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {obj!r} at line {mark.line + 1} "
                                                                    f"(first given at line {first}); keep one of them", mark)
            top[2][obj], top[1] = mark.line + 1, obj
        else:
            top[0][top[1]], top[1] = obj, _Unusual

    for event in yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
        kind = type(event)
        if kind is events.ScalarEvent:
            if event.anchor or event.tag not in (None, "!"):
                raise _Unusual
            tag = resolver.resolve(yaml.ScalarNode, event.value, event.implicit)
            if tag not in _PLAIN_TAGS:
                raise _Unusual
            value = event.value if tag.endswith(":str") else constructor.yaml_constructors[tag](
                constructor, yaml.ScalarNode(tag, event.value))
            add(value, event.start_mark)
        elif kind in (events.MappingStartEvent, events.SequenceStartEvent):
            if event.anchor or event.tag not in (None, "!"):
                raise _Unusual
            stack.append([{} if kind is events.MappingStartEvent else [], _Unusual, {}])
        elif kind in (events.MappingEndEvent, events.SequenceEndEvent):
            add(stack.pop()[0], event.start_mark)
        elif kind is events.AliasEvent:
            raise _Unusual
        elif kind is events.DocumentStartEvent:
            documents += 1
            if documents > 1:
                raise _Unusual
    return root[0] if root else None


def load_yaml_unique_keys(text: str):
    """The YAML document in ``text``; a duplicate key raises ``yaml.YAMLError`` naming it and its lines."""
    import yaml

    try:
        return yaml_from_events(text)
    except _Unusual:
        return yaml.load(text, Loader=_unique_key_loader())
