export default function DashboardIndex() {
  return null;
}
