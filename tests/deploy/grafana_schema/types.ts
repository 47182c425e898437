// The shapes a dashboard of grafana/dashboards must have, from @grafana/schema: the
// dashboard model, and the options (and custom field config) of each panel type the
// dashboards use. ts-json-schema-generator turns them into one JSON schema, in which an
// object accepts no property its type does not declare (a gauge option on a bar gauge).
// The version is the Grafana the compose stack runs (package.json).
import type { Dashboard as DashboardModel } from '@grafana/schema/dist/esm/raw/dashboard/x/dashboard_types.gen';
import type * as BarGauge from '@grafana/schema/dist/esm/raw/composable/bargauge/panelcfg/x/BarGaugePanelCfg_types.gen';
import type * as Gauge from '@grafana/schema/dist/esm/raw/composable/gauge/panelcfg/x/GaugePanelCfg_types.gen';
import type * as Stat from '@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen';
import type * as Table from '@grafana/schema/dist/esm/raw/composable/table/panelcfg/x/TablePanelCfg_types.gen';
import type * as TimeSeries from '@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen';

export type GrafanaDashboard = DashboardModel;

// Grafana fills in what a panel leaves out: every option may be missing
export type BarGaugeOptions = Partial<BarGauge.Options>;
export type GaugeOptions = Partial<Gauge.Options>;
export type StatOptions = Partial<Stat.Options>;
export type TableOptions = Partial<Table.Options>;
export type TimeSeriesOptions = Partial<TimeSeries.Options>;
export type TableFieldConfig = Partial<Table.FieldConfig>;
export type TimeSeriesFieldConfig = Partial<TimeSeries.FieldConfig>;
