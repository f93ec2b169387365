{{/* The operator's name, also its Service, Lease and webhook configuration names. */}}
{{- define "cloudphone.name" -}}cloudphone-operator{{- end -}}

{{- define "cloudphone.labels" -}}
app.kubernetes.io/name: cloudphone-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: cloudphone
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "cloudphone.selectorLabels" -}}
app.kubernetes.io/name: cloudphone-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
