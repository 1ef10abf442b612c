package policy

import (
	"strings"
	"testing"
)

func TestSubsetConditionChecked(t *testing.T) {
	tn := TableName{"public", "customers"}
	for _, tc := range []struct {
		cond, err string
	}{
		{"created_at > now() - interval '90 days'", ""},
		{"customer_id % 10 = 0 AND newsletter", ""},
		{"", "empty"},
		{"true; DELETE FROM customers", "does not parse"},
		{"a) OR (b", "closes a parenthesis"},
		{"true) UNION (SELECT 1", "without clauses of its own"},
		{"true ORDER BY 1", "does not parse"},
		{"created_at >", "does not parse"},
	} {
		err := checkCondition(tn, tc.cond)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.cond, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: %v, want %q", tc.cond, err, tc.err)
		}
	}
}

func TestSubsetFilter(t *testing.T) {
	customers, orders, items, shipments, products, employees :=
		TableName{"public", "customers"}, TableName{"public", "orders"}, TableName{"public", "order_items"},
		TableName{"public", "shipments"}, TableName{"public", "products"}, TableName{"public", "employees"}
	fks := ForeignKeys{
		orders:    {{Name: "o_c", Columns: []string{"customer_id"}, RefTable: customers, RefColumns: []string{"customer_id"}}},
		items:     {{Name: "i_o", Columns: []string{"order_id"}, RefTable: orders, RefColumns: []string{"order_id"}}, {Name: "i_p", Columns: []string{"product_id"}, RefTable: products, RefColumns: []string{"product_id"}}},
		shipments: {{Name: "s_o", Columns: []string{"order_id"}, RefTable: orders, RefColumns: []string{"order_id"}}},
		employees: {{Name: "e_m", Columns: []string{"manager_id"}, RefTable: employees, RefColumns: []string{"id"}}},
	}
	r := &Role{Name: "dev", Subset: map[TableName]string{customers: "created_at > DATE '2025-01-01'"}}
	for _, tc := range []struct {
		t    TableName
		want string
		ok   bool
	}{
		{customers, `(created_at > DATE '2025-01-01')`, true},
		{orders, `("customer_id") IN (SELECT "customer_id" FROM "public"."customers" WHERE (created_at > DATE '2025-01-01'))`, true},
		{shipments, `("order_id") IN (SELECT "order_id" FROM "public"."orders" WHERE ("customer_id") IN (SELECT "customer_id" FROM "public"."customers" WHERE (created_at > DATE '2025-01-01')))`, true},
		{products, "", false},
		{employees, "", false},
	} {
		got, ok := r.SubsetFilter(tc.t, fks)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: %q %v, want %q %v", tc.t, got, ok, tc.want, tc.ok)
		}
	}
	// order_items: filtered through orders, products not filtered.
	if got, ok := r.SubsetFilter(items, fks); !ok || strings.Contains(got, "products") || !strings.Contains(got, `"public"."orders"`) {
		t.Errorf("order_items: %q %v", got, ok)
	}
	if _, ok := (&Role{}).SubsetFilter(orders, fks); ok {
		t.Error("a role without a subset filters")
	}
}
