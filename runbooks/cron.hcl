# Scheduled pipelines: a disk and repository patrol every 30 minutes, a weekday-morning tidy-up.
# Both run with bash only, in the project they were started from, and log to $TMPDIR/oj-cron/.
#
# Usage: oj cron start patrol         (or: oj cron start --all)
# Usage: oj cron once tidy            (fire now, whatever its status)
# Usage: oj cron list; oj status; oj cron stop --all

cron "patrol" {
  interval = "30m"                   # keeps its phase across daemon restarts
  run      = { pipeline = "patrol" }
}

cron "tidy" {
  schedule    = "15 7 * * 1-5"       # 07:15 Monday to Friday
  timezone    = "Europe/Paris"       # DST-aware; default: the daemon's local zone
  concurrency = 1                    # a fire while a run is still active is skipped (and logged)
  catch_up    = "6h"                 # after downtime, the latest missed fire inside 6 h runs once
  run         = { pipeline = "tidy" }
}

pipeline "patrol" {
  step "check" {
    run = <<-SHELL
      dir="${TMPDIR:-/tmp}/oj-cron"
      mkdir -p "$dir"
      {
        echo "== ${cron.name} for ${cron.scheduled_at} in $PWD"
        df -h . | tail -n 1
        git status --short 2>/dev/null | head -n 20 || true
      } >> "$dir/patrol.log"
    SHELL
  }
}

pipeline "tidy" {
  step "trim" {
    run = <<-SHELL
      dir="${TMPDIR:-/tmp}/oj-cron"
      mkdir -p "$dir"
      for log in "$dir"/*.log; do
        test -f "$log" && tail -n 1000 "$log" > "$log.tmp" && mv "$log.tmp" "$log"
      done
      echo "${cron.name} for ${cron.scheduled_at} (catch-up: ${cron.catch_up})" >> "$dir/tidy.log"
    SHELL
  }
}
