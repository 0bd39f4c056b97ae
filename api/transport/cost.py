"""What an operation costs, known before it runs (R39).

The cost is computed from the validated document and the schema alone, so a document too dear to
run is refused before any resolver, loader or database read:

- a field of a leaf type (scalar, enum, or a list of them) costs 0, and so does ``__typename``
  and every introspection field (``__schema``, ``__type``: bounded by the schema, and refused in
  production anyway);
- a field of an object, interface or union type costs 1 plus what is selected inside it;
- a list of objects costs its bound times (1 plus what is selected inside one item). The bound is
  the page size for the ``nodes`` and ``edges`` of a connection (its ``first``, a literal or a
  variable, else the argument's default; never more than ``max_page_size``), a hard bound of the
  product where there is one (a group's ``machines``: ``group_machine_limit``, R11), and
  ``UNBOUNDED_LIST`` for any other list (access lists, roles, queues, recommendations and their
  runs, ...);
- each root field of a mutation costs ``MUTATION_COST`` more (a write transaction);
- fragments and inline fragments count where they are spread; on an interface or union the
  dearest of the concrete types counts (the selections that apply to it, summed);
- ``@skip`` and ``@include`` are ignored (the field counts), so the cost is an upper bound.

:class:`CostAnalysis` caches the cost per document, operation and page-size variables, like the
validation cache: a cached answer is two dict lookups and a tuple (about 2 microseconds); a miss
walks the document once (about 100 microseconds for the dashboard's heaviest document, on a busy
2-core host).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLCompositeType,
    GraphQLField,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_abstract_type,
    is_composite_type,
    is_list_type,
    value_from_ast,
)
from graphql.utilities import get_operation_ast

from domain.kernel.settings import Settings

UNBOUNDED_LIST = 10  # a list with neither a page size nor a product bound counts this many items
MUTATION_COST = 10  # more for each root field of a mutation
PAGE_ARGUMENT = "first"
PAGED_LISTS = frozenset({"nodes", "edges"})  # the lists of a connection, sized by its page


@dataclass(frozen=True)
class CostTable:
    max_page_size: int
    # (type name, field name) -> the most items that list can hold
    list_bounds: Mapping[tuple[str, str], int] = field(default_factory=dict)
    unbounded_list: int = UNBOUNDED_LIST
    mutation_cost: int = MUTATION_COST

    @classmethod
    def from_settings(cls, settings: Settings) -> CostTable:
        group_machines = settings.group_machine_limit  # R11: a group holds at most this many
        return cls(
            max_page_size=settings.max_page_size,
            list_bounds={("MachineGroup", "machines"): group_machines},
        )


@dataclass(frozen=True)
class OperationCost:
    cost: int
    operation: OperationType


class _Walk:
    """One walk of one operation; records the variables that sized a page."""

    def __init__(
        self,
        schema: GraphQLSchema,
        table: CostTable,
        fragments: Mapping[str, FragmentDefinitionNode],
        operation: OperationDefinitionNode,
        variables: Mapping[str, Any],
    ) -> None:
        self.schema = schema
        self.table = table
        self.fragments = fragments
        self.variables = variables
        self.defaults = {
            d.variable.name.value: d.default_value for d in operation.variable_definitions or ()
        }
        self.used: list[str] = []

    def selection(
        self, selection_set: SelectionSetNode | None, parent: GraphQLCompositeType, page: int | None
    ) -> int:
        if selection_set is None:
            return 0
        if is_abstract_type(parent):
            possible = self.schema.get_possible_types(parent)
            return max((self.fields(selection_set, t, page, ()) for t in possible), default=0)
        assert isinstance(parent, GraphQLObjectType)
        return self.fields(selection_set, parent, page, ())

    def fields(
        self,
        selection_set: SelectionSetNode,
        object_type: GraphQLObjectType,
        page: int | None,
        spreading: tuple[str, ...],
    ) -> int:
        total = 0
        for node in selection_set.selections:
            if isinstance(node, FieldNode):
                total += self.field(node, object_type, page)
            elif isinstance(node, InlineFragmentNode):
                condition = node.type_condition
                if condition is None or self.applies(condition.name.value, object_type):
                    total += self.fields(node.selection_set, object_type, page, spreading)
            elif isinstance(node, FragmentSpreadNode):
                name = node.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in spreading:  # validation refuses both
                    continue
                if self.applies(fragment.type_condition.name.value, object_type):
                    total += self.fields(
                        fragment.selection_set, object_type, page, (*spreading, name)
                    )
        return total

    def applies(self, type_name: str, object_type: GraphQLObjectType) -> bool:
        condition = self.schema.get_type(type_name)
        if condition is None or condition is object_type:
            return condition is object_type
        return is_abstract_type(condition) and self.schema.is_sub_type(
            condition,
            object_type,
        )

    def field(self, node: FieldNode, parent: GraphQLObjectType, page: int | None) -> int:
        name = node.name.value
        if name.startswith("__"):
            return 0  # __typename, introspection
        definition = parent.fields.get(name)
        if definition is None:
            return 0  # validation refuses it
        named = get_named_type(definition.type)
        if not is_composite_type(named):
            return 0
        write = self.table.mutation_cost if parent is self.schema.mutation_type else 0
        inner_page = self.page_size(node, definition)
        one = 1 + self.selection(node.selection_set, named, inner_page)
        nullable = get_nullable_type(definition.type)
        if not is_list_type(nullable):
            return write + one
        return write + self.list_bound(parent, name, page) * one

    def list_bound(self, parent: GraphQLObjectType, name: str, page: int | None) -> int:
        bound = self.table.list_bounds.get((parent.name, name))
        if bound is not None:
            return bound
        if page is not None and name in PAGED_LISTS:
            return page
        return self.table.unbounded_list

    def page_size(self, node: FieldNode, definition: GraphQLField) -> int | None:
        """The page a connection field asks for, or None for a field without ``first``."""
        argument = definition.args.get(PAGE_ARGUMENT)
        if argument is None:
            return None
        value: Any = None
        for given in node.arguments or ():
            if given.name.value != PAGE_ARGUMENT:
                continue
            if isinstance(given.value, VariableNode):
                variable = given.value.name.value
                self.used.append(variable)
                if variable in self.variables:
                    value = self.variables[variable]
                elif self.defaults.get(variable) is not None:
                    value = value_from_ast(self.defaults[variable], argument.type)
            elif isinstance(given.value, IntValueNode):
                value = int(given.value.value)
            break
        else:
            value = argument.default_value
        if not isinstance(value, int) or isinstance(value, bool):
            value = self.table.max_page_size  # absent or unusable: the largest page allowed
        return max(0, min(value, self.table.max_page_size))


def operation_cost(
    schema: GraphQLSchema,
    table: CostTable,
    document: DocumentNode,
    operation_name: str | None = None,
    variables: Mapping[str, Any] | None = None,
) -> tuple[OperationCost, tuple[str, ...]]:
    """The cost of the operation and the names of the variables that sized its pages."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return OperationCost(0, OperationType.QUERY), ()
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    walk = _Walk(schema, table, fragments, operation, variables or {})
    root = schema.get_root_type(operation.operation)
    if root is None:
        return OperationCost(0, operation.operation), ()
    cost = walk.fields(operation.selection_set, root, None, ())
    return OperationCost(cost, operation.operation), tuple(dict.fromkeys(walk.used))


def _key_value(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class CostAnalysis:
    """:func:`operation_cost` with a bounded cache (oldest out first) keyed by the document's text, the operation's
    name and the values of the variables that size its pages."""

    def __init__(self, table: CostTable, maxsize: int = 256) -> None:
        self.table = table
        self.maxsize = maxsize
        self._sizing: OrderedDict[tuple[str, str | None], tuple[str, ...]] = OrderedDict()
        self._costs: OrderedDict[tuple[Any, ...], OperationCost] = OrderedDict()

    def cost(
        self,
        schema: GraphQLSchema,
        query: str | None,
        document: DocumentNode,
        operation_name: str | None,
        variables: Mapping[str, Any] | None,
    ) -> OperationCost:
        if query is None:  # a document given as an AST: not cached
            return operation_cost(schema, self.table, document, operation_name, variables)[0]
        sizing = self._sizing.get((query, operation_name))
        if sizing is not None:
            values = tuple(_key_value((variables or {}).get(name)) for name in sizing)
            found = self._costs.get((query, operation_name, values))
            if found is not None:
                return found
        found, sizing = operation_cost(schema, self.table, document, operation_name, variables)
        values = tuple(_key_value((variables or {}).get(name)) for name in sizing)
        _put(self._sizing, (query, operation_name), sizing, self.maxsize)
        _put(self._costs, (query, operation_name, values), found, self.maxsize)
        return found


def _put(cache: OrderedDict[Any, Any], key: Any, value: Any, maxsize: int) -> None:
    cache[key] = value
    if len(cache) > maxsize:
        cache.popitem(last=False)
