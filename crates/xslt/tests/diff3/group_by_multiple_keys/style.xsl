<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" exclude-result-prefixes="#all">
  <!-- An item in several groups (group-by yields several keys) and by month of receipt. -->
  <xsl:template match="/antraege">
    <gruppen>
      <xsl:for-each-group select="antrag" group-by="tokenize(@art || ' ' || @status)">
        <xsl:sort select="lower-case(current-grouping-key())"/>
        <g key="{current-grouping-key()}" n="{count(current-group())}"/>
      </xsl:for-each-group>
      <xsl:for-each-group select="antrag" group-by="substring(@eingang, 1, 7)">
        <xsl:sort select="current-grouping-key()"/>
        <monat key="{current-grouping-key()}" summe="{format-number(sum(current-group()/@betrag), '0.00')}"/>
      </xsl:for-each-group>
    </gruppen>
  </xsl:template>
</xsl:stylesheet>
