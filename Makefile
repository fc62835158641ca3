# The two set-up commands of the README; everything they need is installed on the way.
.PHONY: demo test lint unit bench bench-runner bench-tls bench-upgrade bench-unequal

demo:           ## sandbox lab, full deploy, the seed's workloads on 1 then 3 nodes, reports
	scripts/demo.sh

test:           ## every test: lint, unit, integration, molecule (cluster)
	scripts/test.sh

lint:
	scripts/test.sh lint

unit:
	scripts/test.sh unit

bench:          ## converge at 1, 3, 6 sandbox hosts, raykit and `ray up` side by side (prints numbers)
	scripts/bootstrap.sh test && .venv/bin/python scripts/bench_converge.py --ray-up-env RAY_enable_autoscaler_v2=0

bench-runner:   ## the runner's overhead; balanced vs round-robin on a slow worker (prints numbers)
	scripts/bootstrap.sh test && .venv/bin/python scripts/bench_runner.py

bench-tls:      ## the seed's workloads with TLS off, then on (prints numbers)
	scripts/bootstrap.sh test && .venv/bin/python scripts/bench_tls.py

bench-upgrade:  ## raykit upgrade/rollback downtime vs stop-all-reinstall-start on 3 hosts (prints numbers)
	scripts/bootstrap.sh test && .venv/bin/python scripts/bench_upgrade.py

bench-unequal:  ## fake_nn on a big sandbox host alone, then with a small one: round-robin vs balanced (prints numbers)
	scripts/bootstrap.sh test && .venv/bin/python scripts/bench_unequal.py
