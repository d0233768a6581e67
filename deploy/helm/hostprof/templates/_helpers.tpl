{{- define "hostprof.name" -}}
{{- .Chart.Name -}}
{{- end -}}

{{- define "hostprof.labels" -}}
app.kubernetes.io/name: {{ include "hostprof.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "hostprof.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hostprof.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "hostprof.port" -}}
{{- splitList ":" .Values.listen | last -}}
{{- end -}}
